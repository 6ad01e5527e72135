"""CLI command groups. Each module exposes ``register(app)`` adding its commands."""

COMMAND_MODULES = (
    "pipeline.commands.run",
    "pipeline.commands.train",
    "pipeline.commands.evaluate",
    "pipeline.commands.review",
    "pipeline.commands.batch",
    "pipeline.commands.judge",
)
