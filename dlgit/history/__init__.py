"""Judging history with the hooks' rules: `gather` the facts of a range, `judge` them, `render`
the result. `dlgit check`, pre-push, pre-receive and the flows call this library."""
