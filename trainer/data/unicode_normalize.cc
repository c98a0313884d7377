// NFC through ICU (see unicode_normalize.h). The quick check answers most text
// without copying; normalizeUTF8 works on UTF-8 directly (no UTF-16 round trip).
// Built without ICU (COORD_HAVE_ICU unset), Create fails and says why: the one #if.
#include "trainer/data/unicode_normalize.h"

#if COORD_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uversion.h>
#endif

namespace trainer::data {

#if !COORD_HAVE_ICU
// Built without ICU (see trainer/CMakeLists.txt): no normalizer can be made.
coord::StatusOr<NfcNormalizer> NfcNormalizer::Create() {
  return coord::FailedPrecondition(
      "this gpt-rank was built without ICU (libicu-dev), so it has no NFC normalizer for "
      "this tokenizer; install libicu-dev and rebuild");
}
std::string_view NfcNormalizer::Normalize(std::string_view text, std::string*) const {
  return text;
}
const char* NfcNormalizer::UnicodeVersion() { return "none"; }
#else
coord::StatusOr<NfcNormalizer> NfcNormalizer::Create() {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err) || nfc == nullptr) {
    return coord::Internal(std::string("ICU has no NFC normalizer: ") + u_errorName(err));
  }
  return NfcNormalizer(nfc);
}

std::string_view NfcNormalizer::Normalize(std::string_view text, std::string* scratch) const {
  bool ascii = true;
  for (unsigned char c : text) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return text;
  const auto* nfc = static_cast<const icu::Normalizer2*>(nfc_);
  const icu::StringPiece src(text.data(), static_cast<int32_t>(text.size()));
  UErrorCode err = U_ZERO_ERROR;
  if (nfc->isNormalizedUTF8(src, err) && U_SUCCESS(err)) return text;
  err = U_ZERO_ERROR;
  scratch->clear();
  icu::StringByteSink<std::string> sink(scratch, static_cast<int32_t>(text.size()));
  nfc->normalizeUTF8(0, src, sink, nullptr, err);
  // Only an allocation failure can get here; the text as given beats no text.
  if (U_FAILURE(err)) return text;
  return *scratch;
}

const char* NfcNormalizer::UnicodeVersion() { return U_UNICODE_VERSION; }
#endif  // COORD_HAVE_ICU

}  // namespace trainer::data
