//! Text similarity for near-duplicate detection (support tickets).

/// Levenshtein distance over Unicode scalar values (two-row dynamic programming; O(n·m) time,
/// O(m) memory). Callers bound the input length.
pub fn levenshtein(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    if left.is_empty() {
        return right.len();
    }
    if right.is_empty() {
        return left.len();
    }
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    let mut current = vec![0usize; right.len() + 1];
    for (row, left_char) in left.iter().enumerate() {
        current[0] = row + 1;
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != right_char);
            current[column + 1] = substitution.min(previous[column + 1] + 1).min(current[column] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[right.len()]
}

/// `1 - distance / max(len)`: 1.0 for equal texts, 0.0 when either is empty.
pub fn similarity(left: &str, right: &str) -> f64 {
    let longest = left.chars().count().max(right.chars().count());
    if left.is_empty() || right.is_empty() || longest == 0 {
        return 0.0;
    }
    1.0 - levenshtein(left, right) as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("abc", "abc"), 0);
        assert_eq!(levenshtein("héllo", "hello"), 1);
    }

    #[test]
    fn similarity_is_normalised() {
        assert_eq!(similarity("same text", "same text"), 1.0);
        assert_eq!(similarity("", "x"), 0.0);
        assert!(similarity("The web challenge is down", "The web challenge is down!") >= 0.7);
        assert!(similarity("The web challenge is down", "How are hints charged?") < 0.7);
    }
}
