//! Optimistic concurrency: the `If-Match` condition a change is made under (carts, products).

/// The `If-Match` condition of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match` (or `*`): apply to whatever is current.
    None,
    /// Apply only if the resource's current entity tag is one of these.
    Matches(Vec<String>),
}

impl Precondition {
    /// The header's value as a condition: absent or `*` is none, else its list of tags.
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("*") => Precondition::None,
            Some(value) => {
                Precondition::Matches(value.split(',').map(|t| t.trim().to_owned()).collect())
            }
        }
    }

    /// Does a resource whose entity tag is `current` meet this condition?
    pub fn admits(&self, current: &str) -> bool {
        match self {
            Precondition::None => true,
            Precondition::Matches(tags) => tags.iter().any(|t| t == current),
        }
    }

    /// Did the request name a tag (so a lost race is its 412, not a plain conflict)?
    pub fn is_conditional(&self) -> bool {
        matches!(self, Precondition::Matches(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_and_admits_only_its_tags() {
        assert_eq!(Precondition::from_header(None), Precondition::None);
        assert_eq!(Precondition::from_header(Some(" * ")), Precondition::None);
        let two = Precondition::from_header(Some("\"a\", \"b\""));
        assert!(two.admits("\"b\"") && !two.admits("\"c\"") && two.is_conditional());
        assert!(Precondition::None.admits("\"anything\""));
    }
}
