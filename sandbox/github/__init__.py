"""The sandbox's GitHub half: REST v3 routes (core, Actions, Deployments), its own world beside
the shared core, workflow runs on the clock, signed webhooks, rate limits."""
