import os
import nibabel, numpy
image = nibabel.load(os.environ["PROCNODE_IMAGE"])
data = numpy.asarray(image.dataobj, numpy.float32)
data.flat[10] = numpy.nan
nibabel.save(nibabel.Nifti1Image(data, image.affine), "/output/derived.nii.gz")
