//! Job files: parsing, option types, hostile text and shell values, as one test binary.
mod hostile_text;
mod option_types;
mod parse_job;
mod serve_fields;
mod shell_values;
mod wait_for;
