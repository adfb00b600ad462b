"""How `cem`'s commands print their help (shared by cem.cli and the command modules it loads)."""

from __future__ import annotations

import argparse


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default (argparse adds "(default: …)"), except where the
    default is None: such an option's help says itself what applies (an environment variable, a
    path derived from others), and "(default: None)" would say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)
