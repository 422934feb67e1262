//! Finding lab blocks in a chapter (pulldown-cmark, with source offsets).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::attrs::{Word, parse_duration, words};
use super::{
    Block, Chapter, DEFAULT_TIMEOUT, Expect, LabError, LabErrors, Precondition, Runner, line_column,
};
use crate::topology::Service;

/// Parses the lab blocks of one chapter. `file` names the chapter in errors (as the
/// reader would open it); `path` is its path relative to the book's `src/`.
/// Every problem found is reported, not only the first.
pub fn parse_chapter(file: &str, path: &str, source: &str) -> Result<Chapter, LabErrors> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(source, offset);
        LabError {
            file: file.into(),
            line,
            column,
            message,
        }
    };
    let (blocks, precondition, mut errors) = fenced_blocks(file, source);
    errors.extend(reference_errors(&blocks, &at));
    errors.extend(placeholder_errors(source, &blocks, &at));
    if errors.is_empty() {
        Ok(Chapter {
            path: path.into(),
            blocks,
            precondition,
        })
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        Err(LabErrors(errors))
    }
}

/// The chapter's lab blocks and precondition, and the errors in their markup.
fn fenced_blocks(file: &str, source: &str) -> (Vec<Block>, Option<Precondition>, Vec<LabError>) {
    let mut errors = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut precondition = None;
    let mut current: Option<(String, Range<usize>, String)> = None;
    for (event, range) in Parser::new_ext(source, Options::empty()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                current = Some((info.to_string(), range, String::new()));
            }
            Event::Text(text) => {
                if let Some((_, _, body)) = current.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some((info, range, body)) = current.take() else {
                    continue;
                };
                let fence = FencedBlock {
                    file,
                    source,
                    info: &info,
                    range,
                    body,
                };
                match fence.classify() {
                    Kind::Plain => {}
                    Kind::Precondition => match fence.precondition() {
                        Ok(p) if precondition.is_none() => precondition = Some(p),
                        Ok(_) => errors.push(
                            fence.error(0, "a chapter has one lab-precondition block".into()),
                        ),
                        Err(e) => errors.push(e),
                    },
                    Kind::Step => match fence.block(blocks.len()) {
                        Ok(block) => blocks.push(block),
                        Err(e) => errors.push(e),
                    },
                }
            }
            _ => {}
        }
    }
    (blocks, precondition, errors)
}

/// Duplicate ids (naming both lines), and `stop=`/`await=` naming no earlier
/// background step.
fn reference_errors(blocks: &[Block], at: &impl Fn(usize, String) -> LabError) -> Vec<LabError> {
    let mut errors = Vec::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for block in blocks {
        if let Some(first) = first_line.get(block.id.as_str()) {
            errors.push(at(
                block.span.start,
                format!("duplicate id {:?}: line {first} already has it", block.id),
            ));
        } else {
            first_line.insert(&block.id, block.line);
        }
        for target in block.stops.iter().chain(&block.awaits) {
            let earlier = blocks[..block.index].iter().find(|b| &b.id == target);
            let problem = match earlier {
                None => format!("stop/await names {target:?}, which is no earlier step"),
                Some(b) if !b.background => {
                    format!("stop/await names {target:?}, which is not a background step")
                }
                Some(_) => continue,
            };
            errors.push(at(block.span.start, problem));
        }
    }
    errors
}

/// `{{name}}` in the prose must name a capture of this chapter; inside a lab block it
/// would put the recorded run's value into what the reader types — values travel
/// between steps in shell variables instead.
fn placeholder_errors(
    source: &str,
    blocks: &[Block],
    at: &impl Fn(usize, String) -> LabError,
) -> Vec<LabError> {
    let mut errors = Vec::new();
    let captures: HashSet<&str> = blocks
        .iter()
        .flat_map(|b| b.captures.iter().map(String::as_str))
        .collect();
    for block in blocks {
        let body_at = block.span.start + source[block.span.clone()].find('\n').map_or(0, |i| i + 1);
        for (name, span) in placeholders(&block.body, &[]) {
            if captures.contains(name.as_str()) {
                errors.push(at(
                    body_at + span.start,
                    format!(
                        "{{{{{name}}}}} inside a lab block would type the recorded run's value: \
                         keep the value in a shell variable (name=$(...)) or psql's \\gset, \
                         and pass it to SQL with vars={name}"
                    ),
                ));
            }
        }
    }
    let code: Vec<Range<usize>> = code_spans(source);
    for (name, span) in placeholders(source, &code) {
        if !captures.contains(name.as_str()) {
            errors.push(at(
                span.start,
                format!("{{{{{name}}}}} names no value captured in this chapter"),
            ));
        }
    }
    // Inside inline code `{{name}}` is literal text (the appendix shows the syntax so);
    // one that names a capture was meant as the value and would show its braces.
    let inline: Vec<Range<usize>> = inline_code_spans(source);
    for (name, span) in placeholders(source, &[]) {
        if captures.contains(name.as_str()) && inline.iter().any(|r| r.contains(&span.start)) {
            errors.push(at(
                span.start,
                format!(
                    "{{{{{name}}}}} is inside inline code, where it stays literal text: \
                     move it out of the backticks to show the recorded value"
                ),
            ));
        }
    }
    errors
}

/// The byte ranges of inline code (`` `…` ``) only.
fn inline_code_spans(source: &str) -> Vec<Range<usize>> {
    Parser::new_ext(source, Options::empty())
        .into_offset_iter()
        .filter_map(|(event, range)| matches!(event, Event::Code(_)).then_some(range))
        .collect()
}

/// The byte ranges of code blocks and inline code, where `{{name}}` is literal text.
pub fn code_spans(source: &str) -> Vec<Range<usize>> {
    Parser::new_ext(source, Options::empty())
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::CodeBlock(_)) | Event::Code(_) => Some(range),
            _ => None,
        })
        .collect()
}

/// The `{{name}}` placeholders of the prose (outside code blocks) with their spans.
/// Names are letters, digits, `_`, `-` and `.`.
pub fn placeholders(source: &str, code: &[Range<usize>]) -> Vec<(String, Range<usize>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = source[from..].find("{{").map(|i| i + from) {
        let Some(close) = source[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        let name = &source[open + 2..close];
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if valid && !name.starts_with('#') && !code.iter().any(|r| r.contains(&open)) {
            found.push((name.to_string(), open..close + 2));
            from = close + 2;
        } else {
            from = open + 2;
        }
    }
    found
}

/// The attributes that take no value.
const FLAGS: &[&str] = &[
    "background",
    "hidden",
    "wait-until",
    "expect-fail",
    "expect-timeout",
];

/// Whether `name` can be a shell variable (and a psql variable).
fn is_shell_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

enum Kind {
    Plain,
    Step,
    Precondition,
}

struct FencedBlock<'a> {
    file: &'a str,
    source: &'a str,
    info: &'a str,
    range: Range<usize>,
    body: String,
}

impl FencedBlock<'_> {
    fn classify(&self) -> Kind {
        let mut it = self.info.split_whitespace();
        match (it.next(), it.next()) {
            (Some("lab-precondition"), _) => Kind::Precondition,
            (Some(_), Some("lab" | "check")) => Kind::Step,
            _ => Kind::Plain,
        }
    }

    /// Byte offset of the info string within the chapter source.
    fn info_offset(&self) -> usize {
        let block = &self.source[self.range.clone()];
        let fence_len = block
            .find(|c: char| c != '`' && c != '~' && c != ' ')
            .unwrap_or(0);
        self.range.start + fence_len
    }

    fn error(&self, info_at: usize, message: String) -> LabError {
        let (line, column) = line_column(self.source, self.info_offset() + info_at);
        LabError {
            file: self.file.into(),
            line,
            column,
            message,
        }
    }

    fn words(&self) -> Result<Vec<Word>, LabError> {
        words(self.info).map_err(|(at, message)| self.error(at, message))
    }

    fn unterminated(&self) -> Option<LabError> {
        let block = &self.source[self.range.clone()];
        let fence: String = block
            .trim_start()
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let last = block.trim_end().lines().last().unwrap_or("").trim();
        let closed = block.trim_end().lines().count() > 1
            && last.starts_with(&fence)
            && last
                .chars()
                .all(|c| c == fence.chars().next().unwrap_or('`'));
        (!closed).then(|| self.error(0, format!("unterminated code block: no closing {fence}")))
    }

    fn precondition(&self) -> Result<Precondition, LabError> {
        if let Some(e) = self.unterminated() {
            return Err(e);
        }
        let mut fresh = false;
        let mut services = Vec::new();
        for word in self.words()?.into_iter().skip(1) {
            match word.text.split_once('=') {
                None if word.text == "fresh" => fresh = true,
                Some(("services", list)) => {
                    for service in list.split(',').filter(|s| !s.is_empty()) {
                        if Service::from_name(service).is_none() {
                            return Err(self.error(
                                word.offset,
                                format!(
                                    "unknown service {service:?} (known: {})",
                                    Service::names()
                                ),
                            ));
                        }
                        services.push(service.to_string());
                    }
                }
                _ => {
                    return Err(self.error(
                        word.offset,
                        format!(
                            "unknown lab-precondition attribute {:?} (known: fresh, services=)",
                            word.text
                        ),
                    ));
                }
            }
        }
        Ok(Precondition {
            fresh,
            services,
            text: self.body.clone(),
            span: self.range.clone(),
        })
    }

    fn block(&self, index: usize) -> Result<Block, LabError> {
        if let Some(e) = self.unterminated() {
            return Err(e);
        }
        let words = self.words()?;
        let lang = words[0].text.clone();
        let check = words[1].text == "check";
        let runner = match lang.as_str() {
            "sh" | "bash" | "console" => Runner::Shell,
            "sql" => Runner::Sql {
                service: Service::PostgresPrimary.name().into(),
                database: "db".into(),
            },
            other => {
                return Err(self.error(
                    words[0].offset,
                    format!("lab blocks are `sh` or `sql`, not {other:?}"),
                ));
            }
        };
        let (line, _) = line_column(self.source, self.range.start);
        let mut block = Block {
            index,
            id: format!("step-{}", index + 1),
            runner,
            lang,
            check,
            claim: None,
            body: self.body.clone(),
            info: self.info.to_string(),
            span: self.range.clone(),
            line,
            timeout: DEFAULT_TIMEOUT,
            background: false,
            hidden: false,
            expect: Expect::Success,
            wait_until: false,
            captures: Vec::new(),
            stops: Vec::new(),
            awaits: Vec::new(),
            chart: None,
            bars: None,
            vars: Vec::new(),
            event: None,
            timeline: None,
            topology: None,
        };
        let mut seen: HashSet<&str> = HashSet::new();
        for word in &words[2..] {
            let key = word
                .text
                .split_once('=')
                .map_or(word.text.as_str(), |(k, _)| k);
            if !seen.insert(key) {
                return Err(self.error(word.offset, format!("attribute `{key}` is given twice")));
            }
            self.attribute(&mut block, word)?;
        }
        self.validate(&block)?;
        Ok(block)
    }

    /// Applies one `key` or `key=value` word of the info string to `block`.
    fn attribute(&self, block: &mut Block, word: &Word) -> Result<(), LabError> {
        let err = |message: String| self.error(word.offset, message);
        let (key, value) = match word.text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.text.as_str(), None),
        };
        if FLAGS.contains(&key) {
            if value.is_some() {
                return Err(err(format!("`{key}` takes no value")));
            }
            match key {
                "background" => block.background = true,
                "hidden" => block.hidden = true,
                "wait-until" => block.wait_until = true,
                "expect-fail" => block.expect = Expect::Failure,
                _ => block.expect = Expect::Timeout,
            }
            return Ok(());
        }
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(format!("`{key}` needs a value: {key}=...")))?;
        let names = |what: &str, valid: fn(&str) -> bool| -> Result<Vec<String>, LabError> {
            value
                .split(',')
                .map(|name| match valid(name) {
                    true => Ok(name.to_string()),
                    false => Err(err(format!("{what} {name:?}: use letters, digits and _"))),
                })
                .collect()
        };
        match key {
            "id" => {
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(err(format!("id {value:?}: use letters, digits, - and _")));
                }
                block.id = value.to_string();
            }
            "timeout" => {
                block.timeout =
                    parse_duration(value).map_err(|e| err(format!("malformed timeout: {e}")))?;
                if block.timeout.is_zero() {
                    return Err(err("timeout must be more than 0".into()));
                }
            }
            "on" | "db" | "vars" => self.sql_attribute(block, word, key, value)?,
            "claim" => block.claim = Some(value.to_string()),
            "event" => block.event = Some(value.to_string()),
            "timeline" => block.timeline = Some(value.to_string()),
            "chart" => block.chart = Some(value.to_string()),
            "bars" => block.bars = Some(value.to_string()),
            "topology" => block.topology = Some(value.to_string()),
            "expect-exit" => {
                let code = value
                    .parse()
                    .map_err(|_| err(format!("expect-exit={value:?} is not an exit code")))?;
                block.expect = Expect::Exit(code);
            }
            "capture" => block.captures = names("capture name", is_shell_name)?,
            "stop" => block.stops.extend(value.split(',').map(str::to_string)),
            "await" => block.awaits.extend(value.split(',').map(str::to_string)),
            _ => {
                return Err(err(format!(
                    "unknown attribute {key:?} (known: id, timeout, on, db, claim, background, hidden, \
                     wait-until, expect-fail, expect-exit, expect-timeout, capture, stop, await, chart, \
                     bars, vars, event, timeline, topology)"
                )));
            }
        }
        Ok(())
    }

    /// `on=`, `db=` and `vars=`: where and with what a SQL block's psql runs.
    fn sql_attribute(
        &self,
        block: &mut Block,
        word: &Word,
        key: &str,
        value: &str,
    ) -> Result<(), LabError> {
        let err = |message: String| self.error(word.offset, message);
        let Runner::Sql { service, database } = &mut block.runner else {
            return Err(err(match key {
                "on" => {
                    "`on=` is for sql blocks; a shell step names its service in its command".into()
                }
                "vars" => {
                    "`vars=` is for sql blocks: a shell step reads its variables itself".into()
                }
                _ => format!("`{key}=` is for sql blocks"),
            }));
        };
        match key {
            "on" if Service::from_name(value).is_none() => {
                return Err(err(format!(
                    "unknown service {value:?} (known: {})",
                    Service::names()
                )));
            }
            "on" => *service = value.to_string(),
            "db" => *database = value.to_string(),
            _ => {
                for name in value.split(',') {
                    if !is_shell_name(name) {
                        return Err(err(format!(
                            "vars: {name:?} is not a shell variable name (letters, digits, _)"
                        )));
                    }
                    block.vars.push(name.to_string());
                }
            }
        }
        Ok(())
    }

    /// The rules between attributes: what a check, a background step, `stop=` and
    /// `timeline=` need.
    fn validate(&self, block: &Block) -> Result<(), LabError> {
        if block.check && block.background {
            return Err(self.error(0, "a check cannot run in the background".into()));
        }
        if block.check && block.claim.is_none() {
            return Err(self.error(0, "a check states its claim: claim=\"...\"".into()));
        }
        if block.background && block.wait_until {
            return Err(self.error(0, "a background step cannot wait-until".into()));
        }
        if block.background && block.body.trim_end().lines().count() != 1 {
            return Err(self.error(
                0,
                "a background step is one command line: the reader types it with `&` \
                 and stops it with `kill -INT`, which reaches that one command"
                    .into(),
            ));
        }
        if block.background && !is_shell_name(&block.id) {
            return Err(self.error(
                0,
                format!(
                    "a background step's id names the shell variable that keeps its process id \
                     (`{}=$!`): {:?} is not a shell name (letters, digits, _)",
                    block.id, block.id
                ),
            ));
        }
        if (!block.stops.is_empty() || !block.awaits.is_empty()) && block.runner != Runner::Shell {
            return Err(self.error(
                0,
                "stop=/await= are for sh blocks (the reader types `kill`/`wait`)".into(),
            ));
        }
        if block.topology.is_some() && (block.runner != Runner::Shell || block.background) {
            return Err(self.error(
                0,
                "topology= draws the table `runner topology` prints: a foreground sh step".into(),
            ));
        }
        if block.timeline.is_some() && !block.background {
            return Err(self.error(
                0,
                "timeline= draws a background writer's progress: add `background`".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Chapter, LabErrors> {
        parse_chapter("book/src/ch.md", "ch.md", src)
    }

    #[test]
    fn finds_steps_checks_and_precondition_with_spans() {
        let src = "# T\n\n```lab-precondition fresh services=pgbouncer\nA fresh cluster.\n```\n\n\
                   ```sh lab id=up timeout=2m\ndocker compose ps\n```\n\nText.\n\n\
                   ```sql check on=postgres-sync-standby claim=\"it streams\" wait-until\nSELECT true;\n```\n\n\
                   ```rust\nfn main() {}\n```\n";
        let ch = parse(src).unwrap();
        let pre = ch.precondition.unwrap();
        assert!(pre.fresh);
        assert_eq!(pre.services, ["pgbouncer"]);
        assert_eq!(ch.blocks.len(), 2);
        let up = &ch.blocks[0];
        assert_eq!(up.id, "up");
        assert_eq!(up.timeout.as_secs(), 120);
        assert_eq!(up.body, "docker compose ps\n");
        assert!(src[up.span.clone()].starts_with("```sh lab"));
        assert!(src[up.span.clone()].trim_end().ends_with("```"));
        assert_eq!(up.line, 7);
        let check = &ch.blocks[1];
        assert!(check.check && check.wait_until);
        assert_eq!(check.id, "step-2");
        assert_eq!(check.claim.as_deref(), Some("it streams"));
        assert_eq!(
            check.runner,
            Runner::Sql {
                service: "postgres-sync-standby".into(),
                database: "db".into()
            }
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let src = "Intro\n\n```sh lab timout=5s\necho\n```\n";
        let err = parse(src).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(
            err.0[0].to_string().split(": ").next().unwrap(),
            "book/src/ch.md:3:11"
        );
        assert!(err.0[0].message.contains("unknown attribute \"timout\""));
    }

    #[test]
    fn bad_timeout_unknown_service_duplicate_id_all_reported() {
        let src = "```sh lab id=a timeout=5x\necho\n```\n\n```sql lab on=postgres-nowhere\nSELECT 1;\n```\n\n\
                   ```sh lab id=b\necho\n```\n\n```sh lab id=b\necho\n```\n";
        let errs = parse(src).unwrap_err().0;
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("book/src/ch.md:1:16: malformed timeout"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("book/src/ch.md:5:12: unknown service \"postgres-nowhere\""),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].starts_with("book/src/ch.md:13:1: duplicate id \"b\""),
            "{}",
            msgs[2]
        );
    }

    #[test]
    fn duplicate_id_names_both_lines_and_a_repeated_attribute_is_an_error() {
        let errs = parse("```sh lab id=a\necho\n```\n\n```sh lab id=a\necho\n```\n")
            .unwrap_err()
            .0;
        assert_eq!(
            errs[0].to_string(),
            "book/src/ch.md:5:1: duplicate id \"a\": line 1 already has it"
        );
        let errs = parse("```sh lab id=w background background\nsleep 1\n```\n")
            .unwrap_err()
            .0;
        assert_eq!(
            errs[0].to_string(),
            "book/src/ch.md:1:27: attribute `background` is given twice"
        );
    }

    #[test]
    fn captured_values_stay_out_of_what_the_reader_types() {
        let src =
            "```sh lab capture=lsn\necho lsn: 0/1\n```\n\n```sql lab\nSELECT '{{lsn}}';\n```\n";
        let errs = parse(src).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0]
                .to_string()
                .starts_with("book/src/ch.md:6:9: {{lsn}} inside a lab block"),
            "{}",
            errs[0]
        );
        // The same value through a shell variable and vars= is fine.
        let ok = "```sh lab capture=lsn\nlsn=0/1; echo lsn: $lsn\n```\n\n```sql lab vars=lsn\nSELECT :'lsn';\n```\n";
        let ch = parse(ok).unwrap();
        assert_eq!(ch.blocks[1].vars, ["lsn"]);
    }

    #[test]
    fn background_steps_are_one_command_named_like_a_shell_variable() {
        let errs = parse("```sh lab id=w background\nsleep 1\nsleep 2\n```\n")
            .unwrap_err()
            .0;
        assert!(errs[0].message.contains("one command line"), "{}", errs[0]);
        let errs = parse("```sh lab id=my-writer background\nsleep 1\n```\n")
            .unwrap_err()
            .0;
        assert!(errs[0].message.contains("not a shell name"), "{}", errs[0]);
        let errs = parse("```sh lab vars=x\necho\n```\n").unwrap_err().0;
        assert!(errs[0].message.contains("for sql blocks"), "{}", errs[0]);
    }

    #[test]
    fn unterminated_block_is_an_error() {
        let errs = parse("Text\n\n```sh lab\necho hi\n").unwrap_err().0;
        assert!(
            errs[0].to_string().starts_with("book/src/ch.md:3:"),
            "{}",
            errs[0]
        );
        assert!(errs[0].message.contains("unterminated"));
    }

    #[test]
    fn check_needs_a_claim_and_stop_needs_a_background_step() {
        let errs = parse("```sql check\nSELECT true;\n```\n").unwrap_err().0;
        assert!(errs[0].message.contains("claim"));
        let errs = parse("```sh lab id=w\nsleep 1\n```\n\n```sh lab stop=w\necho\n```\n")
            .unwrap_err()
            .0;
        assert!(
            errs[0].message.contains("not a background step"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn a_captured_value_inside_inline_code_is_an_error() {
        let src =
            "The primary holds `{{members}}`.\n\n```sh lab capture=members\necho members: 1\n```\n";
        let errs = parse(src).unwrap_err().0;
        assert_eq!(
            errs[0].to_string(),
            "book/src/ch.md:1:20: {{members}} is inside inline code, where it stays literal \
             text: move it out of the backticks to show the recorded value"
        );
        // Outside the backticks it is the value; inside them, a name no step captures is
        // the literal syntax (as the appendix writes `{{name}}`).
        let ok = "The primary holds {{members}}, written `{{name}}`.\n\n```sh lab capture=members\necho members: 1\n```\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn placeholders_must_name_captures_and_skip_code() {
        let ok = "Lost {{lost}} rows, `{{literal}}`.\n\n```sh lab capture=lost\nrunner verify\n```\n\n```text\n{{not_checked}}\n```\n";
        assert!(parse(ok).is_ok());
        let errs = parse("We saw {{nothing}}.\n").unwrap_err().0;
        assert_eq!(
            errs[0].to_string(),
            "book/src/ch.md:1:8: {{nothing}} names no value captured in this chapter"
        );
    }

    #[test]
    fn topology_is_a_foreground_shell_steps_caption() {
        let ch =
            parse("```sh lab topology=\"after the failover\"\nrunner topology\n```\n").unwrap();
        assert_eq!(ch.blocks[0].topology.as_deref(), Some("after the failover"));
        let errs = parse("```sql lab topology=x\nSELECT 1;\n```\n")
            .unwrap_err()
            .0;
        assert!(
            errs[0].message.contains("foreground sh step"),
            "{}",
            errs[0]
        );
        let errs = parse("```sh lab id=t background topology=x\nrunner topology\n```\n")
            .unwrap_err()
            .0;
        assert!(
            errs[0].message.contains("foreground sh step"),
            "{}",
            errs[0]
        );
        let errs = parse("```sh lab topology\nrunner topology\n```\n")
            .unwrap_err()
            .0;
        assert!(errs[0].message.contains("needs a value"), "{}", errs[0]);
    }

    #[test]
    fn digest_changes_with_text_and_attributes() {
        let a = parse("```sh lab\necho 1\n```\n").unwrap().blocks[0].digest();
        let b = parse("```sh lab\necho 2\n```\n").unwrap().blocks[0].digest();
        let c = parse("```sh lab timeout=5s\necho 1\n```\n").unwrap().blocks[0].digest();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            parse("```sh lab\necho 1\n```\n").unwrap().blocks[0].digest()
        );
    }
}
