//! What the server accepts as a nickname, a room name and a line: checked
//! once, on the server, before anything is stored or sent on. Pure
//! functions; the refusal is the `INVALID_ARGUMENT` status the caller sees.

use protowright::rpc::Status;

/// The longest nickname, in characters.
pub const MAX_NICK: usize = 16;
/// The longest room name, in characters.
pub const MAX_ROOM: usize = 32;
/// The longest line, in bytes of UTF-8.
pub const MAX_LINE: usize = 1000;

/// Checks a nickname: 1 to [`MAX_NICK`] ASCII letters, digits, `-` or `_`.
pub fn check_nick(nick: &str) -> Result<(), Status> {
    check_name("nickname", nick, MAX_NICK)
}

/// Checks a room name: 1 to [`MAX_ROOM`] ASCII letters, digits, `-` or `_`.
pub fn check_room(room: &str) -> Result<(), Status> {
    check_name("room name", room, MAX_ROOM)
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument(format!("a {what} is required")));
    }
    if name.len() > max {
        return Err(Status::invalid_argument(format!(
            "the {what} is {} characters long; at most {max} are allowed",
            name.chars().count()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(Status::invalid_argument(format!(
            "the {what} `{}` contains {bad:?}; use ASCII letters, digits, `-` and `_`",
            name.escape_default()
        )));
    }
    Ok(())
}

/// Checks a line: 1 to [`MAX_LINE`] bytes, no control characters.
pub fn check_line(text: &str) -> Result<(), Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument("an empty line is not sent"));
    }
    if text.len() > MAX_LINE {
        return Err(Status::invalid_argument(format!(
            "the line is {} bytes long; at most {MAX_LINE} are allowed",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Status::invalid_argument(
            "the line contains control characters (newlines, escapes); send plain text",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use protowright::rpc::Code;

    use super::*;

    fn refusal(result: Result<(), Status>) -> String {
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        status.message().to_owned()
    }

    #[test]
    fn plain_ascii_names_within_the_length_pass() {
        for nick in ["ada", "Bob_2", "x", "a-b-c", "sixteen_chars_ok"] {
            assert_eq!(check_nick(nick), Ok(()), "{nick}");
        }
        assert_eq!(check_room(&"r".repeat(MAX_ROOM)), Ok(()));
    }

    #[test]
    fn empty_long_and_odd_names_are_refused_saying_why() {
        assert!(refusal(check_nick("")).contains("required"));
        assert!(refusal(check_nick(&"n".repeat(MAX_NICK + 1))).contains("at most 16"));
        assert!(refusal(check_nick("a b")).contains("' '"));
        assert!(refusal(check_nick("zoë")).contains("ASCII"));
        assert!(refusal(check_room("#lobby")).contains("'#'"));
        assert!(refusal(check_room("a\u{1b}[31m")).contains("\\u{1b}"));
    }

    #[test]
    fn lines_must_be_plain_text_within_the_limit() {
        assert_eq!(check_line("hello, world — ünïcode is fine"), Ok(()));
        assert_eq!(check_line(&"x".repeat(MAX_LINE)), Ok(()));
        assert!(refusal(check_line("   ")).contains("empty"));
        assert!(refusal(check_line(&"x".repeat(MAX_LINE + 1))).contains("1001 bytes"));
        assert!(refusal(check_line("two\nlines")).contains("control"));
    }
}
