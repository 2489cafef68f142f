"""AIHub: model cards, their inference classes and Gradio demos."""
