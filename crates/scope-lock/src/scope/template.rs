//! `${context.<var>}` templates in scope entries, replaced as the original replaces them
//! (`docs/protocol.md`, A3), before the entries are normalised.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Replaces every `${context.<var>}` in each entry with the context's value for `var`, in one
/// pass, as the original does. A variable missing from the context is left as written, as is
/// any other namespace (`${env.X}`, `${captured.x}`). Replacements are not scanned again.
///
/// `context` is any collection of `(name, value)` string pairs: a `HashMap`, a `BTreeMap`, a
/// slice of pairs; a name given twice takes its last value. The original inserts
/// `str(value)`, so a caller whose values are not strings renders them as Python's `str()`
/// does (`True`, `None`, `42`) to get the original's paths. Entries are paths and are worked
/// on byte for byte: a part that is not UTF-8 is kept as it is (only a variable's *name*
/// must be UTF-8 to match).
///
/// ```
/// use std::collections::HashMap;
/// use std::path::PathBuf;
///
/// let context = HashMap::from([("run_id", "r-7")]);
/// let scope = scope_lock::resolve_scope(&[".loops/runs/${context.run_id}", "${env.HOME}"], &context);
/// assert_eq!(scope, [PathBuf::from(".loops/runs/r-7"), PathBuf::from("${env.HOME}")]);
/// ```
pub fn resolve_scope<T, K, V>(
    templates: &[T],
    context: impl IntoIterator<Item = (K, V)>,
) -> Vec<PathBuf>
where
    T: AsRef<Path>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let context: HashMap<String, V> = context
        .into_iter()
        .map(|(name, value)| (name.as_ref().to_owned(), value))
        .collect();
    templates
        .iter()
        .map(|template| {
            let bytes = template.as_ref().as_os_str().as_bytes();
            PathBuf::from(OsString::from_vec(substitute(bytes, &context)))
        })
        .collect()
}

const OPEN: &[u8] = b"${context.";

/// The regex `\$\{context\.([^}]+)\}`, replaced left to right without rescanning replacements.
fn substitute(template: &[u8], context: &HashMap<String, impl AsRef<str>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.windows(OPEN.len()).position(|window| window == OPEN) {
        let (before, found) = rest.split_at(start);
        out.extend_from_slice(before);
        // `found` begins with `OPEN`.
        let after_open = &found[OPEN.len()..];
        rest = match after_open.iter().position(|&byte| byte == b'}') {
            Some(end) if end > 0 => {
                let value = std::str::from_utf8(&after_open[..end])
                    .ok()
                    .and_then(|name| context.get(name));
                match value {
                    Some(value) => out.extend_from_slice(value.as_ref().as_bytes()),
                    None => out.extend_from_slice(&found[..OPEN.len() + end + 1]),
                }
                &after_open[end + 1..]
            }
            // `${context.}` or no closing brace: not a template here; move past the `$`.
            _ => {
                out.push(b'$');
                &found[1..]
            }
        };
    }
    out.extend_from_slice(rest);
    out
}
