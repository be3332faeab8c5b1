"""Cases: a file's frames, spacing and sweeps (`case`), opened from every format (`loading`,
`headers`), the challenge's facts and measuring rule (`acouslic`, `measure`), synthetic and
demo cases (`synthetic`, `demo`)."""
