DROP TABLE access_exclusions;
