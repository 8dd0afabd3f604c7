//! The login form: the token, typed once, for a session cookie.

use crate::telemetry::Response;
use crate::web::HTML;
use crate::web::html::{self, Html};

/// The form, with `status` and why the last try failed.
pub fn form(status: u16, error: Option<&str>) -> Response {
    let mut main = Html::new();
    main.raw("<h1>Log in</h1>\n");
    if let Some(error) = error {
        main.raw("<p id=\"login-error\" class=\"problem\">")
            .text(error)
            .raw("</p>\n");
    }
    main.raw(
        "<form method=\"post\" action=\"/login\" id=\"login\" class=\"login\">\n\
         <label for=\"token\">Token</label>\n\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus>\n\
         <button type=\"submit\">Log in</button>\n</form>\n\
         <p class=\"note\">The token is in the file given to <code>supportctl serve --auth-token-file</code>. \
         A session lasts 12 hours, or until the server restarts.</p>\n",
    );
    Response::new(status, HTML, html::page("Log in", None, &main))
}
