"""The stages of one upgrade step, one module each, run in order by `step_runner.StepRunner`:

    preflight → fetch → extract → precheck → rehearse → checkpoint → activate (switch, restart, verify; auto-rollback) → finish

Each stage module's `run` takes what the stage needs (the step's facts and journal, the results of the stages
before it) and returns what it produced, a frozen result (`step_results.py`); the runner makes each one doit
action, hands the results on and builds the step's record from them. `done.reason` is the step's doit `uptodate`
check."""
