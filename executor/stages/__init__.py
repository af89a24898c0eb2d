"""The stages of one upgrade step, one module each, run in order by `step_runner.StepRunner`:

    preflight → fetch → extract → precheck → rehearse → checkpoint → activate (switch, restart, verify; auto-rollback) → finish

Each module's `run(runner)` is one doit action; `done.reason` is the step's doit `uptodate` check."""
