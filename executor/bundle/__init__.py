"""Air-gapped bundles: exactly the artifacts a lock names, verified against it, in one directory (or plain tar).

Terraform's `providers mirror` resolves versions itself and ignores the lock (hashicorp/terraform#28274); a
bundle is driven by the lock only, so nothing that was not reviewed can be carried across the air gap.

Layout of a bundle directory (`obsplan bundle LOCK -o DIR`):

    obsplan.lock                    byte copy of the lock it was built from
    manifest.json                   file → kind, url, sha256, size, which lock entries need it (deterministic)
    artifacts/<host>/<url path>     each artifact, stored under its download URL (unique even when two
                                    versions share a file name, like loki-linux-amd64.zip)
    checksums/<host>/<url path>     each upstream checksum file, kept as evidence

One idea per module, imported directly (this package imports none of them): `wanted` (what a lock needs and
where it goes), `files` (fixed names, temp names), `evidence` (checksum files against the lock), `manifest`,
`download`, `build` (`build_bundle`) and its `result`, `tarball` (write, extract safely, open), `verify`
(`verify_bundle`), `source` (`apply --bundle`: `BundleSource`, `check_for_apply`).
"""
