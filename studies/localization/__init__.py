"""The localization study: experiment grid, runner and report."""
