//! A hostile test plugin. Its behaviour comes from its ruleset, one
//! directive per line, so a single component covers every failure the host
//! must survive:
//!
//! | directive          | on `process`                                            |
//! |--------------------|---------------------------------------------------------|
//! | `loop`             | spins forever                                           |
//! | `alloc`            | allocates (and touches) memory without bound            |
//! | `trap`             | panics on every call                                    |
//! | `trap-on-data`     | panics on every call with at least one flow             |
//! | `trap-every N`     | panics on every Nth call                                |
//! | `trap-on-port P`   | panics when the batch holds a flow to port P            |
//! | `echo`             | one finding per row, with what the plugin could see     |
//! | `bad-row`          | one finding for a row past the end, one valid finding   |
//! | `oversized N`      | N findings for row 0                                    |
//! | `print`            | writes a line to stdout and to stderr                   |
//! | `refuse`           | (`configure` itself fails)                              |
//!
//! It always asks for `dns-query` and the sensitive `mail-from`, so tests can
//! check that an ungranted sensitive field never arrives.

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Entity, Finding, LoadReport, Ruleset, Severity,
    Subject, TextField, Timestamp,
};

#[derive(Debug, Clone, PartialEq)]
enum Directive {
    Loop,
    Alloc,
    Trap,
    TrapOnData,
    TrapEvery(u64),
    TrapOnPort(u16),
    Echo,
    BadRow,
    Oversized(u32),
    Print,
}

#[derive(Debug, Default)]
pub struct Chaos {
    directives: Vec<Directive>,
    calls: u64,
    hoard: Vec<Vec<u8>>,
}

fn parse(ruleset: &Ruleset) -> Result<Vec<Directive>, ConfigError> {
    let text = String::from_utf8_lossy(&ruleset.content);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let location = format!("{}:{}", ruleset.name, i + 1);
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or_default();
        let arg = words.next().map(str::parse::<u64>);
        let number = |arg: Option<Result<u64, _>>| match arg {
            Some(Ok(n)) => Ok(n),
            _ => Err(ConfigError::new(
                &location,
                format!("`{word}` needs a number"),
            )),
        };
        out.push(match word {
            "loop" => Directive::Loop,
            "alloc" => Directive::Alloc,
            "trap" => Directive::Trap,
            "trap-on-data" => Directive::TrapOnData,
            "trap-every" => Directive::TrapEvery(number(arg)?.max(1)),
            "trap-on-port" => Directive::TrapOnPort(number(arg)? as u16),
            "echo" => Directive::Echo,
            "bad-row" => Directive::BadRow,
            "oversized" => Directive::Oversized(number(arg)? as u32),
            "print" => Directive::Print,
            "refuse" => return Err(ConfigError::new(&location, "refused as asked")),
            other => {
                return Err(ConfigError::new(
                    &location,
                    format!("unknown directive `{other}`"),
                ));
            }
        });
    }
    Ok(out)
}

impl Detector for Chaos {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Misbehaves on purpose, as its ruleset says")
            .wants(&[TextField::DnsQuery, TextField::MailFrom])
            .stateful()
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let mut directives = Vec::new();
        for ruleset in &rulesets {
            directives.extend(parse(ruleset)?);
        }
        let report = LoadReport::loaded(directives.len() as u32);
        self.directives = directives;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        self.calls += 1;
        let mut findings = Vec::new();
        for directive in self.directives.clone() {
            match directive {
                Directive::Loop => loop {
                    std::hint::black_box(self.calls);
                },
                Directive::Alloc => loop {
                    self.hoard.push(vec![1u8; 1 << 20]);
                },
                Directive::Trap => panic!("chaos: trap on every call"),
                // Passes the host's empty-batch self-test, then fails on
                // every flow: a plugin that breaks on real data.
                Directive::TrapOnData => {
                    if !batch.is_empty() {
                        panic!("chaos: trap on {} flows", batch.len());
                    }
                }
                Directive::TrapEvery(n) => {
                    if self.calls.is_multiple_of(n) {
                        panic!("chaos: trap on call {}", self.calls);
                    }
                }
                Directive::TrapOnPort(port) => {
                    if batch.dst_ports().contains(&port) {
                        panic!("chaos: poison flow to port {port}");
                    }
                }
                Directive::Echo => {
                    for flow in batch.iter() {
                        findings.push(
                            Finding::new(flow, "echo", "Seen")
                                .severity(Severity::Info)
                                .evidence("dst_port", flow.dst_port())
                                .evidence("dns_query", flow.dns_query().unwrap_or("<none>"))
                                .evidence("mail_from", flow.mail_from().unwrap_or("<none>")),
                        );
                    }
                }
                Directive::BadRow => {
                    let rows = batch.len() as u32;
                    let mut bad = Finding::new(Subject::Row(rows + 5), "bad-row", "Past the end");
                    bad.severity = Severity::High;
                    findings.push(bad);
                    if let Some(first) = batch.get(0) {
                        findings.push(Finding::new(first, "good-row", "Inside the batch"));
                    }
                }
                Directive::Oversized(n) => {
                    for _ in 0..n {
                        findings.push(Finding::new(Subject::Row(0), "flood", "One of many"));
                    }
                }
                Directive::Print => {
                    println!("chaos: stdout line on call {}", self.calls);
                    eprintln!("chaos: stderr line on call {}", self.calls);
                }
            }
        }
        findings
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        if !self.directives.contains(&Directive::Echo) {
            return Vec::new();
        }
        let entity = Entity::new(0, std::net::IpAddr::from([192, 0, 2, 1]).into(), now);
        vec![Finding::new(entity, "tick", "Tick").severity(Severity::Info)]
    }

    fn snapshot(&self) -> Vec<u8> {
        self.calls.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| ConfigError::new("snapshot", "expected 8 bytes"))?;
        self.calls = u64::from_le_bytes(bytes);
        Ok(())
    }
}

kansoku_plugin::export!(Chaos);
