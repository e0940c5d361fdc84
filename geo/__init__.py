"""Pure geometry: distances, the reach model, H3 cover, Chinese datums, coordinate validation.

No I/O and no imports from the rest of the project: the dispatcher's matching and the planner's
coverage both call these functions, so they can never disagree.
"""
