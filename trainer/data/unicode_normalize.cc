// NFC through ICU (see unicode_normalize.h). The quick check answers most text
// without copying; normalizeUTF8 works on UTF-8 directly (no UTF-16 round trip).
#include "trainer/data/unicode_normalize.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uversion.h>

namespace trainer::data {

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

}  // namespace trainer::data
