"""The coach dashboard: server-rendered pages (Jinja2, htmx, SortableJS, server-sent events) on
the same app as the HTTP API, calling the same services as the CLI. See nurture.web.app."""
