"""pytest plugin of the hub (registered in pyproject.toml under ``pytest11``).

Placeholder so that pytest can load the declared plugin; fixtures for a running hub, a broker and
the agency simulators come with the integration work.
"""
