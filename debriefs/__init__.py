"""After a responder faced an emergency: their debrief, and the coordinators' follow-up list."""
