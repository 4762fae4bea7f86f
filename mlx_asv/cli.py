"""What the command lines of the package and the studies share: the parser
made from a command's docstring, and the output format option.

It sits beside the layers, not in ``commands/``: most of the mains it serves
live in the lower layers (``envs/install.py`` is asv's install_command), and a
module may not import a later layer. It imports nothing but argparse, so
asv's environments, which run ``python -m mlx_asv.envs.install``, can import it.
"""

import argparse

FORMATS = ("md", "json")


def parser(doc, wrap=False):
    """The argument parser of a command whose module docstring is ``doc``: the
    docstring's first paragraph is its description, printed as written (its
    usage lines stay lines), or with ``wrap`` refilled to the terminal's width
    (the commands whose first paragraph is one sentence)."""
    description = doc.split("\n\n")[0]
    if wrap:
        return argparse.ArgumentParser(description=description)
    return argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_format(ap, formats=FORMATS):
    """``--format``: Markdown (the default) or one of the other ``formats``."""
    ap.add_argument("--format", choices=formats, default="md")
