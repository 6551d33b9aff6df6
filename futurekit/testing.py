"""PLACEHOLDER - being written. Test helpers: InlineExecutor, ShuffledExecutor."""
