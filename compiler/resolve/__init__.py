"""The resolve stage: each component's target version and the from-state its plan starts at."""
