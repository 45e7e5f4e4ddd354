"""Datasets, endpoints and their policies (issue 15): values, validation and the graph planner.

Pure Core like the modules beside it; the client routes live in reconciler/space.py and the
graph executor in reconciler/graph_apply.py.
"""
