"""Using a trained model: packed models, the Python API (Speech2Text), media files to model inputs."""
