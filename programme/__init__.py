"""The programme report (issue 22): how the rescue circle performs, by place, team or month."""
