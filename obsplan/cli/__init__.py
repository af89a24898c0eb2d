"""The command-line edge: parse, call one library function, render, map to an exit code (`main.py` is the
entry point; each command module is named after its command)."""
