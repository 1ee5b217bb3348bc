"""What a pipeline stage is made of: tools, scratch space, the stage loop and its shared work,
the consent view, energy, references, scatter."""
