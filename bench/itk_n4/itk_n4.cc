// The N4 benchmark's peer: ITK 5.2's N4BiasFieldCorrectionImageFilter run plainly, at full
// resolution with ITK's defaults (one fitting level, 50 iterations, convergence 0.001, 4 control
// points per axis, FWHM 0.15), the mask from Otsu's threshold (bench only; never linked into
// procnode). DICOM folder -> the corrected image as NIfTI.
// Usage: itk_n4 DICOM_DIR OUT.nii.gz
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImageFileWriter.h>
#include <itkImageSeriesReader.h>
#include <itkN4BiasFieldCorrectionImageFilter.h>
#include <itkOtsuThresholdImageFilter.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: itk_n4 DICOM_DIR OUT.nii.gz\n";
    return 2;
  }
  using Image = itk::Image<float, 3>;
  using Mask = itk::Image<unsigned char, 3>;
  try {
    auto names = itk::GDCMSeriesFileNames::New();
    names->SetDirectory(argv[1]);
    const auto series = names->GetSeriesUIDs();
    if (series.empty()) throw std::runtime_error("no DICOM series");
    auto reader = itk::ImageSeriesReader<Image>::New();
    reader->SetImageIO(itk::GDCMImageIO::New());
    reader->SetFileNames(names->GetFileNames(series.front()));
    reader->Update();
    auto otsu = itk::OtsuThresholdImageFilter<Image, Mask>::New();
    otsu->SetInput(reader->GetOutput());
    otsu->SetInsideValue(0);  // below the threshold: background
    otsu->SetOutsideValue(1);
    otsu->Update();
    auto n4 = itk::N4BiasFieldCorrectionImageFilter<Image, Mask, Image>::New();
    n4->SetInput(reader->GetOutput());
    n4->SetMaskImage(otsu->GetOutput());
    n4->Update();
    auto writer = itk::ImageFileWriter<Image>::New();
    writer->SetInput(n4->GetOutput());
    writer->SetFileName(argv[2]);
    writer->Update();
  } catch (const std::exception& e) {
    std::cerr << "itk_n4: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
