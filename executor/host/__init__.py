"""The host as it is: paths, probes and facts, integrity, drift, hand changes accepted or adopted."""
