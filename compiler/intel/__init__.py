"""The intelligence stage: breaking changes from upstream changelogs and security advisories, per step."""
