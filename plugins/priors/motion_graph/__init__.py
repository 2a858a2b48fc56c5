"""The motion-graph prior's parts: runs, features, graph, search, trajectory, assembly."""
