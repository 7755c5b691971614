"""Pure domain logic: no Ray, no HTTP, no database, no wall clock (see STYLE.md)."""
