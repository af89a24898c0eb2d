"""`apply`: the run around the steps (options, approvals, binding, refusals, phases, doit, the host lock)."""
