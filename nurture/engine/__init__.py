"""The engine: it picks due steps (dispatch), runs their actions and completes them."""
