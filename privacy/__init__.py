"""Privacy under China's Personal Information Protection Law (PIPL), and what responders expect.

What is kept of a responder's whereabouts, and for how long:
- off duty: nothing. The live store holds a position only while its person is on duty (a fix from
  someone off duty is refused as `not_on_duty`; going off duty or being deactivated deletes it),
  and no table or log line at INFO keeps one (tests/integration/test_privacy_off_duty.py looks).
- on duty: the live position (overwritten by each fix, gone when they go off duty), and, once they
  accept an alert, the incident timeline's positions (`positions.py`), for
  `position_retention_days` (`retention.py`).

A responder may download everything held about them (`export.py`) and have their account erased
(`erasure.py`): the incident record keeps an anonymous stand-in in their place.
"""
