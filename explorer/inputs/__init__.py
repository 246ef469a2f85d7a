"""Inputs: a drawing, upload or example -> the 28x28 image the model was trained on (preprocess, upload limits,
built-in and MNIST examples, affine transforms)."""
