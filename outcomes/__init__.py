"""What became of the patient: the Utstein core record of each incident and its CSV report."""
