/*
 * fuzz_modelfile.c - the model file decoder on arbitrary bytes.
 *
 * Random mutations almost never keep the two CRC-32Cs valid, which would confine the fuzzer
 * to the checksum checks. So each input is decoded twice: as it is, and with both CRCs
 * recomputed wherever the (mutated) header says they lie, which lets mutations reach the
 * configuration, meta and tensor-table checks. Whatever decodes must re-encode and decode to
 * the same model.
 */
#include "hl/modelfile.h"

#include "fuzz.h"
#include "modelfile_crc.h"

static void check_roundtrip(const hl_model *m)
{
    void *enc;
    size_t len;
    hl_model *m2;
    FUZZ_CHECK(hl_modelfile_encode(m, &enc, &len) == HL_OK);
    FUZZ_CHECK(hl_modelfile_decode(enc, len, &m2, NULL, NULL) == HL_OK);
    FUZZ_CHECK(memcmp(&m->cfg, &m2->cfg, sizeof(m->cfg)) == 0);
    FUZZ_CHECK(m->n_params == m2->n_params);
    FUZZ_CHECK(memcmp(m->params, m2->params, m->n_params * sizeof(float)) == 0);
    FUZZ_CHECK(strcmp(m->name, m2->name) == 0 && strcmp(m->trained_on, m2->trained_on) == 0);
    hl_model_free(m2);
    free(enc);
}

static void decode(const uint8_t *data, size_t size)
{
    hl_model *m = NULL;
    hl_error e;
    uint32_t crc = 0;
    hl_error_clear(&e);
    hl_status st = hl_modelfile_decode(data, size, &m, &crc, &e);
    fuzz_check_error(st, &e);
    FUZZ_CHECK((st == HL_OK) == (m != NULL));
    if (m != NULL)
        check_roundtrip(m);
    hl_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    if (tu_modelfile_fix_crcs(copy, size))
        decode(copy, size);
    free(copy);
    return 0;
}
