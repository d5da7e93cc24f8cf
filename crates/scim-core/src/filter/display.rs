//! Printing a typed filter as filter text that parses back to the same tree.

use std::fmt;

use super::Filter;

enum Item<'a> {
    Text(&'static str),
    Node(&'a Filter, bool),
}

impl fmt::Display for Filter {
    /// Prints the filter. Nested `and`/`or` groups and `not` get
    /// parentheses, so parsing the text gives back an equal filter.
    /// Uses an explicit stack: any depth prints without recursion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filter(f, self, false)
    }
}

/// Displays a value filter (the inside of `attr[...]`) with sub-attribute
/// names relative to the enclosing attribute; see [`Filter::as_value_filter`].
#[derive(Debug, Clone, Copy)]
pub struct ValueFilterDisplay<'a>(&'a Filter);

impl fmt::Display for ValueFilterDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filter(f, self.0, true)
    }
}

impl Filter {
    /// Displays this filter as the inside of a value path: `type eq "work"`
    /// rather than `emails.type eq "work"`.
    pub fn as_value_filter(&self) -> ValueFilterDisplay<'_> {
        ValueFilterDisplay(self)
    }
}

fn write_filter(f: &mut fmt::Formatter<'_>, root: &Filter, in_element: bool) -> fmt::Result {
    let mut stack = vec![Item::Node(root, in_element)];
    while let Some(item) = stack.pop() {
        let (node, in_element) = match item {
            Item::Text(t) => {
                f.write_str(t)?;
                continue;
            }
            Item::Node(node, in_element) => (node, in_element),
        };
        match node {
            Filter::And(children) | Filter::Or(children) => {
                let is_and = matches!(node, Filter::And(_));
                let sep = if is_and { " and " } else { " or " };
                for (i, child) in children.iter().enumerate().rev() {
                    // `and` binds tighter than `or`, so only a nested group
                    // of the same kind, or an `or` under an `and`, needs parentheses.
                    let parens = matches!(child, Filter::Or(_))
                        || (is_and && matches!(child, Filter::And(_)));
                    if parens {
                        stack.push(Item::Text(")"));
                    }
                    stack.push(Item::Node(child, in_element));
                    if parens {
                        stack.push(Item::Text("("));
                    }
                    if i > 0 {
                        stack.push(Item::Text(sep));
                    }
                }
            }
            Filter::Not(inner) => {
                f.write_str("not (")?;
                stack.push(Item::Text(")"));
                stack.push(Item::Node(inner, in_element));
            }
            Filter::Present(attr) => {
                write_path(f, attr, in_element)?;
                f.write_str(" pr")?;
            }
            Filter::Compare { attr, op, value } => {
                write_path(f, attr, in_element)?;
                write!(f, " {op} {value}")?;
            }
            Filter::ValuePath { attr, filter } => {
                write!(f, "{}[", attr.path())?;
                stack.push(Item::Text("]"));
                stack.push(Item::Node(filter, true));
            }
        }
    }
    Ok(())
}

fn write_path(
    f: &mut fmt::Formatter<'_>,
    attr: &crate::schema::AttrRef,
    in_element: bool,
) -> fmt::Result {
    match (in_element, attr.sub_attribute()) {
        (true, Some(sub)) => f.write_str(&sub.name),
        _ => f.write_str(&attr.path()),
    }
}
