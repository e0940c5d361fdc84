"""Volunteer service record (issue 22): time on duty and on incidents, points, and the export."""
