"""Lists to intermediaries (DESIGN.md section 12): composing, sending, answers, closing; their pages and files."""
