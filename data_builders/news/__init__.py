"""Geo-tagged news builder: URL → country → continent, region presets, experiments, metadata templates."""
