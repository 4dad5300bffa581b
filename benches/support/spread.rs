//! An even sample of the rules a set of rule files loads: every n-th loaded
//! rule in file order, so the sample keeps the full set's mix of kinds.
//! Shared by the detector benchmark and `signature`'s native rate test.

use std::collections::HashSet;

/// `count` enabled rule lines of `files` (name, content) spread evenly over
/// those not `skipped` (`name:line` places from the load report), as one
/// rule file's text.
pub fn spread<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    skipped: &HashSet<&str>,
    count: usize,
) -> String {
    let mut loaded = Vec::new();
    for (name, content) in files {
        if !name.ends_with(".rules") {
            continue;
        }
        let text = String::from_utf8_lossy(content);
        for (i, line) in text.lines().enumerate() {
            let place = format!("{name}:{}", i + 1);
            if line.starts_with("alert ") && !skipped.contains(place.as_str()) {
                loaded.push(line.to_owned());
            }
        }
    }
    let step = (loaded.len() / count.max(1)).max(1);
    let lines: Vec<String> = loaded.into_iter().step_by(step).take(count).collect();
    lines.join("\n")
}
