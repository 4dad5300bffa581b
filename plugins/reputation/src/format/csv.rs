//! CSV feeds with a column mapping (`[lists."…".columns]`). The header may
//! be a plain first row (Feodo Tracker) or the last comment line before the
//! data (URLhaus writes `# id,dateadded,url,…`); columns can also be given
//! by number when a feed has no header at all.

use kansoku_plugin::ConfigError;

use crate::entry::Category;
use crate::index::Builder;
use crate::indicator::shown;
use crate::settings::{Column, Columns, ListSettings};
use crate::time;

use super::Item;

pub fn read(
    name: &str,
    text: &str,
    settings: &ListSettings,
    builder: &mut Builder,
) -> Result<(), ConfigError> {
    let Some(columns) = &settings.columns else {
        return Err(ConfigError::new(
            name,
            "a CSV list needs a column mapping: [lists.\"NAME\".columns] value = \"…\" in the \
             list settings",
        ));
    };
    let delimiter = u8::try_from(settings.delimiter.unwrap_or(','))
        .map_err(|_| ConfigError::new(name, "the CSV delimiter must be one ASCII character"))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let commented_header = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .last()
        .map(|l| split_header(l, delimiter));

    let mut map: Option<Mapping> = None;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(line, csv::Position::line);
                builder.skip(&format!("{name}:{at}"), "", format!("unreadable CSV: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        let location = format!("{name}:{line}");
        let first = record.get(0).unwrap_or_default();
        if first.starts_with('#') || (record.len() == 1 && first.is_empty()) {
            continue;
        }
        let mapping = match &map {
            Some(mapping) => mapping,
            None => {
                // The first row: a header if it names the value column.
                let header: Vec<String> = record.iter().map(str::to_ascii_lowercase).collect();
                let named = |names: &[String]| matches!(&columns.value, Column::Name(v) if names.contains(&v.to_ascii_lowercase()));
                let by_name = matches!(columns.value, Column::Name(_));
                let in_comment = commented_header.as_deref().is_some_and(named);
                // Named columns and no commented header naming them: the
                // first row is the header (and the error lists it if not).
                let is_header = by_name && (named(&header) || !in_comment);
                let names = if is_header {
                    Some(header)
                } else {
                    commented_header.clone()
                };
                let mapping = Mapping::new(columns, names.as_deref())
                    .map_err(|e| ConfigError::new(&location, e))?;
                let mapping = map.insert(mapping);
                if is_header {
                    continue;
                }
                mapping
            }
        };
        let value = mapping
            .value
            .and_then(|i| record.get(i))
            .unwrap_or_default();
        let mut item = Item::default();
        match super::indicator(value, settings) {
            Ok(indicator) => item.indicator = Some(indicator),
            Err(reason) => {
                builder.skip(&location, value, reason);
                continue;
            }
        }
        let cell = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let stamp = |c: Option<usize>, what: &str| -> Result<Option<i64>, String> {
            cell(c)
                .map(|v| time::parse(v).map_err(|e| format!("{what}: {e}")))
                .transpose()
        };
        let stamps = (|| {
            Ok::<_, String>((
                stamp(mapping.first_seen, "first seen")?,
                stamp(mapping.last_seen, "last seen")?,
                stamp(mapping.expires, "expiry")?,
            ))
        })();
        match stamps {
            // First seen is when a feed noticed it, not when it turned bad:
            // it dates the entry for its maximum age but never hides
            // earlier traffic.
            Ok((first_seen, last_seen, expires)) => {
                item.last_seen = last_seen.or(first_seen);
                item.until = expires;
            }
            Err(reason) => {
                builder.skip(&location, value, reason);
                continue;
            }
        }
        item.category = cell(mapping.category).map(Category::parse);
        if let Some(c) = cell(mapping.confidence) {
            match c.parse::<u8>() {
                Ok(c) if c <= 100 => item.confidence = Some(c),
                _ => {
                    builder.skip(
                        &location,
                        value,
                        format!("confidence `{}` is not 0 to 100", shown(c)),
                    );
                    continue;
                }
            }
        }
        item.label = cell(mapping.label).map(str::to_owned);
        builder.add(item);
    }
    if map.is_none() {
        builder.note(format!("{name}: no data rows"));
    }
    Ok(())
}

fn split_header(line: &str, delimiter: u8) -> Vec<String> {
    line.split(char::from(delimiter))
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect()
}

/// Column positions, 0-based.
#[derive(Debug)]
struct Mapping {
    value: Option<usize>,
    category: Option<usize>,
    confidence: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    expires: Option<usize>,
    label: Option<usize>,
}

impl Mapping {
    fn new(columns: &Columns, header: Option<&[String]>) -> Result<Self, String> {
        let find = |column: &Option<Column>, what: &str| -> Result<Option<usize>, String> {
            match column {
                None => Ok(None),
                Some(Column::Number(0)) => Err(format!("column {what}: numbers start at 1")),
                Some(Column::Number(n)) => Ok(Some(n - 1)),
                Some(Column::Name(wanted)) => {
                    let wanted_lower = wanted.to_ascii_lowercase();
                    header
                        .and_then(|h| h.iter().position(|c| *c == wanted_lower))
                        .map(Some)
                        .ok_or_else(|| match header {
                            Some(h) => format!(
                                "column {what} `{wanted}` is not in the header ({})",
                                h.join(", ")
                            ),
                            None => format!(
                                "column {what} `{wanted}` is named but the file has no header; \
                                 give its number instead"
                            ),
                        })
                }
            }
        };
        Ok(Self {
            value: find(&Some(columns.value.clone()), "value")?,
            category: find(&columns.category, "category")?,
            confidence: find(&columns.confidence, "confidence")?,
            first_seen: find(&columns.first_seen, "first_seen")?,
            last_seen: find(&columns.last_seen, "last_seen")?,
            expires: find(&columns.expires, "expires")?,
            label: find(&columns.label, "label")?,
        })
    }
}
