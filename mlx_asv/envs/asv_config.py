"""asv's config files, read the one way this project reads them: with asv's
own reader (JSON with ``//`` comments), so what a command reads is what asv
runs. asv.conf.json is the project's config; the torch matrix
(asv.torch.conf.json), the config variants and the comparison sessions'
derived configs are made from it."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "asv.conf.json")


def load_conf(path=CONF):
    """The asv config at ``path`` as a dict."""
    # asv is imported on the first read, not with this module: its import
    # takes ~0.13 s, which every command that imports the protocol would pay
    # even where it reads no config.
    from asv.util import load_json

    return load_json(path, js_comments=True)
