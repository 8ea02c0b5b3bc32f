"""The plugin's models, by name, looked up before RecBole's."""
MODELS = {}
