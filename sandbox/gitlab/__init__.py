"""The sandbox's GitLab half: REST v4 routes and JSON shapes, pipelines on the clock, webhooks."""
