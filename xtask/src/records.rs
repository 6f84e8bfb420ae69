//! Issue records: `issues/<ID>.md`, Markdown with TOML front matter between
//! two `+++` lines. See `issues/README.md` for the format.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::Shell;

/// The front matter of one issue record. Top-level keys other than these (`status`,
/// `upstream`, ...) are for people and are ignored; inside a criterion, an unknown key is an
/// error, since a misspelt `tests` or `against_pre_fix` would silently drop a check.
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) criteria: Vec<Criterion>,
}

/// One acceptance criterion and the tests that prove it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Criterion {
    pub(crate) id: String,
    pub(crate) summary: String,
    /// Tests that must pass on the fix.
    #[serde(default)]
    pub(crate) tests: Vec<String>,
    /// Tests that must fail, with `symptom` in their output, on the pre-fix port.
    #[serde(default)]
    pub(crate) against_pre_fix: Vec<PreFixCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreFixCheck {
    pub(crate) test: String,
    pub(crate) symptom: String,
}

/// A record file as found on disk: its parsed front matter, or why it could not be read.
#[derive(Debug)]
pub(crate) struct RecordFile {
    pub(crate) path: PathBuf,
    /// The file name without `.md`; the record's id when it cannot be parsed.
    pub(crate) stem: String,
    pub(crate) record: Result<Record, String>,
}

impl RecordFile {
    pub(crate) fn id(&self) -> &str {
        match &self.record {
            Ok(record) => &record.id,
            Err(_) => &self.stem,
        }
    }
}

/// Every `*.md` in `dir` except `README.md`, sorted by file name.
pub(crate) fn read_dir(sh: &Shell, dir: &Path) -> anyhow::Result<Vec<RecordFile>> {
    let mut paths = sh
        .read_dir(dir)
        .with_context(|| format!("reading the issue records in {}", dir.display()))?;
    paths.retain(|path| {
        path.extension().is_some_and(|ext| ext == "md")
            && path.file_name().is_some_and(|name| name != "README.md")
            && path.is_file()
    });
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|it| it.to_string_lossy().into_owned())
            .unwrap_or_default();
        let record = sh
            .read_file(&path)
            .map_err(|err| format!("cannot read it: {err}"))
            .and_then(|text| parse(&text).map_err(|err| format!("{err:#}")))
            .and_then(|record| {
                if record.id == stem {
                    Ok(record)
                } else {
                    Err(format!(
                        "its id is {:?} but the file is named {stem}.md (want <ID>.md)",
                        record.id
                    ))
                }
            });
        files.push(RecordFile { path, stem, record });
    }
    Ok(files)
}

/// The records named on the command line (by id or file name, ignoring case), or all of
/// them; and the names that matched no record.
pub(crate) fn select(files: Vec<RecordFile>, wanted: &[String]) -> (Vec<RecordFile>, Vec<String>) {
    if wanted.is_empty() {
        return (files, Vec::new());
    }
    let matches = |file: &RecordFile, name: &str| {
        file.id().eq_ignore_ascii_case(name)
            || file.stem.eq_ignore_ascii_case(name.trim_end_matches(".md"))
    };
    let unknown = wanted
        .iter()
        .filter(|name| !files.iter().any(|f| matches(f, name)))
        .cloned()
        .collect();
    let selected = files
        .into_iter()
        .filter(|f| wanted.iter().any(|name| matches(f, name)))
        .collect();
    (selected, unknown)
}

/// The TOML between the opening `+++` line and the next `+++` line.
pub(crate) fn front_matter(text: &str) -> anyhow::Result<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if first.trim_end() == "+++" => {}
        _ => bail!("the first line must be `+++`, opening the TOML front matter"),
    }
    let start = text.find('\n').map_or(text.len(), |it| it + 1);
    let mut offset = start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Ok(&text[start..offset]);
        }
        offset += line.len();
    }
    bail!("the front matter is not closed: no second `+++` line")
}

/// Parses a record's front matter and checks what makes a record as a whole unusable.
/// A criterion's own shortcomings (no tests, a malformed test id) are judged by `verify`
/// so that they show up against that criterion.
pub(crate) fn parse(text: &str) -> anyhow::Result<Record> {
    let toml = front_matter(text)?;
    let record: Record = toml::from_str(toml).context("the front matter is not a valid record")?;
    if record.id.trim().is_empty() {
        bail!("`id` is empty");
    }
    if record.title.trim().is_empty() {
        bail!("`title` is empty");
    }
    if record.criteria.is_empty() {
        bail!("the record has no [[criteria]]: nothing to verify");
    }
    for (i, criterion) in record.criteria.iter().enumerate() {
        if criterion.id.trim().is_empty() {
            bail!("criterion #{} has an empty `id`", i + 1);
        }
        if record.criteria[..i].iter().any(|it| it.id == criterion.id) {
            bail!("two criteria are both called {:?}", criterion.id);
        }
    }
    Ok(record)
}

/// Splits a test id `<cargo target>::<libtest name>`.
pub(crate) fn split_test_id(id: &str) -> Option<(&str, &str)> {
    let (target, name) = id.split_once("::")?;
    let ok = !target.is_empty()
        && !name.is_empty()
        && !target.contains(char::is_whitespace)
        && !name.starts_with(':')
        && !name.ends_with(':');
    ok.then_some((target, name))
}

/// The function name of a libtest name: its last `::` segment. Evidence files are named after it.
pub(crate) fn function_name(libtest_name: &str) -> &str {
    libtest_name.rsplit("::").next().unwrap_or(libtest_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"+++
id = "BUG-423"
title = "Lock released before acquire() returns"

[[criteria]]
id = "AC-1"
summary = "release never fails because the file is already gone"
tests = ["bug_423::release_tolerates_a_concurrent_delete", "held_for_life::released_once"]

[[criteria]]
id = "AC-8"
summary = "the suite detects the bug on the pre-fix port"
tests = ["bug_423::ac8_pre_fix_admits_two_holders"]
against_pre_fix = [
  { test = "bug_423::many_processes_release_without_error", symptom = "NotFound" },
  { test = "bug_423::eight_processes_never_hold_at_once", symptom = "two holders" },
]
+++
# BUG-423

+++ is fine in the prose.
"#;

    #[test]
    fn reads_a_record() -> anyhow::Result<()> {
        let record = parse(SAMPLE)?;
        assert_eq!(record.id, "BUG-423");
        assert_eq!(record.criteria.len(), 2);
        assert_eq!(record.criteria[0].tests.len(), 2);
        assert!(record.criteria[0].against_pre_fix.is_empty());
        let checks = &record.criteria[1].against_pre_fix;
        assert_eq!(checks.len(), 2);
        assert_eq!(
            checks[1].test,
            "bug_423::eight_processes_never_hold_at_once"
        );
        assert_eq!(checks[1].symptom, "two holders");
        Ok(())
    }

    #[test]
    fn front_matter_is_between_the_first_two_fence_lines() -> anyhow::Result<()> {
        assert_eq!(front_matter("+++\na = 1\n+++\nprose\n+++\n")?, "a = 1\n");
        assert_eq!(front_matter("+++\r\na = 1\r\n+++\r\n")?, "a = 1\r\n");
        assert_eq!(front_matter("+++\n+++")?, "");
        Ok(())
    }

    fn parse_err(text: &str) -> String {
        match parse(text) {
            Ok(record) => panic!("parsed, but should not have: {record:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn bad_records_are_errors_that_say_why() {
        let cases = [
            ("# no front matter\n", "first line must be `+++`"),
            ("+++\nid = \"X\"\n", "not closed"),
            ("+++\nid = \"X\"\ntitle = \"t\"\n+++\n", "no [[criteria]]"),
            (
                "+++\nid = \"X\"\n[[criteria]]\nid = \"A\"\nsummary = \"s\"\n+++\n",
                "title",
            ),
            ("+++\nid = \"\"\ntitle = \"t\"\n+++\n", "`id` is empty"),
            (
                "+++\nid = \"X\"\ntitle = \"t\"\n[[criteria]]\nid = \"A\"\nsummary = \"s\"\ntest = [\"a::b\"]\n+++\n",
                "unknown field `test`",
            ),
            (
                "+++\nid = \"X\"\ntitle = \"t\"\n[[criteria]]\nid = \"A\"\nsummary = \"s\"\n\
                 against_pre_fix = [{ test = \"a::b\", symptom = \"x\", sympton = \"y\" }]\n+++\n",
                "unknown field `sympton`",
            ),
            (
                "+++\nid = \"X\"\ntitle = \"t\"\n[[criteria]]\nid = \"A\"\nsummary = \"s\"\n\
                 [[criteria]]\nid = \"A\"\nsummary = \"t\"\n+++\n",
                "two criteria are both called \"A\"",
            ),
            ("+++\nid = \"X\n+++\n", "not a valid record"),
        ];
        for (text, want) in cases {
            let err = parse_err(text);
            assert!(
                err.contains(want),
                "for {text:?}: error {err:?} does not say {want:?}"
            );
        }
    }

    #[test]
    fn other_top_level_keys_are_left_for_people() -> anyhow::Result<()> {
        let text = "+++\nid = \"X\"\ntitle = \"t\"\nstatus = \"fixed\"\nupstream = \"u\"\n\
                    [[criteria]]\nid = \"A\"\nsummary = \"s\"\ntests = [\"a::b\"]\n+++\n";
        assert_eq!(parse(text)?.criteria.len(), 1);
        Ok(())
    }

    #[test]
    fn a_criterion_without_tests_still_parses_for_verify_to_fail_it() -> anyhow::Result<()> {
        let record = parse(
            "+++\nid = \"X\"\ntitle = \"t\"\n[[criteria]]\nid = \"A\"\nsummary = \"s\"\n+++\n",
        )?;
        assert!(
            record.criteria[0].tests.is_empty() && record.criteria[0].against_pre_fix.is_empty()
        );
        Ok(())
    }

    #[test]
    fn test_ids_are_target_then_libtest_name() {
        assert_eq!(
            split_test_id("bug_423::eight_processes_never_hold_at_once"),
            Some(("bug_423", "eight_processes_never_hold_at_once"))
        );
        assert_eq!(
            split_test_id("scope_lock::record::tests::bad_files_are_errors_that_say_why"),
            Some((
                "scope_lock",
                "record::tests::bad_files_are_errors_that_say_why"
            ))
        );
        for bad in ["no_separator", "::name", "target::", "a b::c", "t:::x"] {
            assert_eq!(split_test_id(bad), None, "{bad}");
        }
        assert_eq!(function_name("record::tests::bad_files"), "bad_files");
        assert_eq!(function_name("top_level"), "top_level");
    }

    #[test]
    fn file_names_must_match_ids_and_readme_is_skipped() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let dir = sh.create_temp_dir()?;
        sh.write_file(dir.path().join("README.md"), "# not a record\n")?;
        sh.write_file(dir.path().join("BUG-423.md"), SAMPLE)?;
        sh.write_file(dir.path().join("BUG-1.md"), SAMPLE)?;
        sh.write_file(dir.path().join("notes.txt"), "ignored")?;
        let files = read_dir(&sh, dir.path())?;
        let stems: Vec<_> = files.iter().map(|it| it.stem.as_str()).collect();
        assert_eq!(stems, ["BUG-1", "BUG-423"]);
        let err = files[0]
            .record
            .as_ref()
            .err()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(err.contains("named BUG-1.md"), "{err}");
        assert_eq!(files[0].id(), "BUG-1");
        assert!(files[1].record.is_ok());
        Ok(())
    }

    #[test]
    fn selects_named_records_and_reports_unknown_ones() {
        let file = |stem: &str| RecordFile {
            path: PathBuf::from(format!("issues/{stem}.md")),
            stem: stem.into(),
            record: Err("x".into()),
        };
        let files = vec![file("BUG-1"), file("BUG-423")];
        let (selected, unknown) = select(files, &["bug-423".into(), "BUG-7".into()]);
        let stems: Vec<&str> = selected.iter().map(|it| it.stem.as_str()).collect();
        assert_eq!(stems, ["BUG-423"]);
        assert_eq!(unknown, ["BUG-7"]);
        let (selected, unknown) = select(vec![file("BUG-1")], &[]);
        assert_eq!((selected.len(), unknown.len()), (1, 0));
    }

    /// The records in the repository's issues/ directory must all be readable.
    #[test]
    fn the_repositorys_issue_records_parse() -> anyhow::Result<()> {
        let dir = crate::project_root().join("issues");
        if !dir.is_dir() {
            return Ok(());
        }
        let sh = Shell::new()?;
        for file in read_dir(&sh, &dir)? {
            let record = file
                .record
                .map_err(|err| anyhow::anyhow!("{}: {err}", file.path.display()))?;
            for criterion in &record.criteria {
                let named = criterion
                    .tests
                    .iter()
                    .chain(criterion.against_pre_fix.iter().map(|it| &it.test));
                let mut count = 0;
                for test in named {
                    count += 1;
                    assert!(
                        split_test_id(test).is_some(),
                        "{} {}: {test:?} is not <target>::<test name>",
                        record.id,
                        criterion.id
                    );
                }
                assert!(count > 0, "{} {} names no test", record.id, criterion.id);
                for check in &criterion.against_pre_fix {
                    assert!(
                        !check.symptom.is_empty(),
                        "{} {}: empty symptom",
                        record.id,
                        criterion.id
                    );
                }
            }
        }
        Ok(())
    }
}
